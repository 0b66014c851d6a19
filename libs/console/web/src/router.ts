// Hash routes (#/promotions/ID): the page never reloads, so the token in memory survives
// navigation; links work with the keyboard and the browser's back button.
import { useEffect, useState } from "preact/hooks";

export interface Route {
  page: string;
  params: string[];
}

export function parse(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] ?? "compliance", params: parts.slice(1) };
}

export function href(...parts: string[]): string {
  return "#/" + parts.map(encodeURIComponent).join("/");
}

export function go(...parts: string[]): void {
  location.hash = href(...parts);
}

// Effects run after the first paint: a hash set between the first render and the listener's
// start (a link followed, or a URL typed, while the page was still drawing) would be missed,
// so the hash is read again once listening.
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.hash));
  useEffect(() => {
    const on = () =>
      setRoute((old) => {
        const now = parse(location.hash);
        return now.page === old.page && now.params.join("/") === old.params.join("/") ? old : now;
      });
    addEventListener("hashchange", on);
    on();
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}
