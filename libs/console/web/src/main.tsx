// The Golden Goose console: sign-in, navigation, and the pages. Every action calls the same
// REST API goosectl uses; buttons appear only with the permission they need (the API still
// refuses anything else).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { can, onUnauthorized, signOut, type Session } from "./api";
import { href, useRoute, type Route } from "./router";
import { SignIn, finishSsoIfReturning } from "./pages/signin";
import { Compliance, ServicePage } from "./pages/compliance";
import { Promotions, PromotionPage, StartPromotion } from "./pages/promotions";
import { Approvals } from "./pages/approvals";
import { Evidence } from "./pages/evidence";
import { Chain } from "./pages/chain";
import { Models, UseCases, Incidents, Slos } from "./pages/registries";
import { ErrorBox } from "./ui";

const NAV: [string, string, string | null][] = [
  ["compliance", "Compliance", "service.read"],
  ["promotions", "Promotions", "service.read"],
  ["approvals", "Approvals", "approval.read"],
  ["evidence", "Evidence", "evidence.read"],
  ["chain", "Chain", null],
  ["models", "Models", null],
  ["usecases", "Use cases", null],
  ["incidents", "Incidents", null],
  ["slos", "SLAs", null],
];

// The route is App's (one listener for the page and its navigation bar): a page mounted after
// a sign-in must not keep a route of its own that could miss a change of the hash.
function Page({ session, route }: { session: Session; route: Route }) {
  const { page, params } = route;
  const [a, b] = params;
  switch (page) {
    case "compliance":
      return <Compliance />;
    case "services":
      return a ? <ServicePage name={a} /> : <Compliance />;
    case "promotions":
      if (a === "new") return <StartPromotion session={session} />;
      return a ? <PromotionPage id={a} session={session} /> : <Promotions session={session} />;
    case "approvals":
      return <Approvals session={session} />;
    case "evidence":
      return <Evidence session={session} service={a} version={b} />;
    case "chain":
      return <Chain event={a} />;
    case "models":
      return <Models />;
    case "usecases":
      return <UseCases />;
    case "incidents":
      return <Incidents />;
    case "slos":
      return <Slos />;
    default:
      return (
        <p role="alert">
          No page “{page}”. <a href={href("compliance")}>Back to compliance</a>.
        </p>
      );
  }
}

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [ssoError, setSsoError] = useState<unknown>(null);
  const route = useRoute();

  useEffect(() => {
    onUnauthorized(() => {
      signOut();
      setSession(null);
      setNotice("Your session ended (the token expired or was revoked): sign in again.");
    });
    finishSsoIfReturning().then(
      (s) => s && setSession(s),
      (e: unknown) => setSsoError(e),
    );
  }, []);

  useEffect(() => {
    const main = document.getElementById("main");
    main?.focus({ preventScroll: true });
    document.title = `${route.page[0]?.toUpperCase()}${route.page.slice(1)} · Golden Goose`;
  }, [route.page, route.params.join("/")]);

  if (!session) {
    return (
      <>
        <header class="top">
          <span class="brand">Golden Goose</span>
        </header>
        <main id="main" tabIndex={-1}>
          {notice ? (
            <p class="notice" role="status">
              {notice}
            </p>
          ) : null}
          <ErrorBox error={ssoError} />
          <SignIn
            onAttempt={() => {
              setNotice(null);
              setSsoError(null);
            }}
            onSignedIn={(s) => {
              setNotice(null);
              setSsoError(null);
              setSession(s);
            }}
          />
        </main>
      </>
    );
  }
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById("main")?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Golden Goose</span>
        <nav aria-label="Pages">
          <ul>
            {NAV.filter(([, , perm]) => perm === null || can(session, perm)).map(([page, label]) => (
              <li key={page}>
                <a href={href(page)} aria-current={route.page === page ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span data-testid="signed-in-as">
            {session.user} <span class="muted">({session.roles.join(", ") || "no role"})</span>
          </span>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              signOut();
              setSession(null);
              setNotice("Signed out.");
              location.hash = "";
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page session={session} route={route} />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) render(<App />, root);
