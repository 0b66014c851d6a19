// Validates Istio security resources against the schemas @kubernetes-models/istio publishes
// (generated from Istio's CRDs). Usage: node istio_validate.js DOCS.json — a JSON array of
// resources; prints one line per resource and exits 1 if any is refused or of an unknown kind.
const fs = require("fs");
const models = {
  "security.istio.io/v1": require("@kubernetes-models/istio/security.istio.io/v1"),
  "security.istio.io/v1beta1": require("@kubernetes-models/istio/security.istio.io/v1beta1"),
};
const docs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const doc of docs) {
  const group = models[doc.apiVersion];
  const Model = group && group[doc.kind];
  const name = `${doc.apiVersion} ${doc.kind} ${doc.metadata && doc.metadata.name}`;
  if (!Model) {
    console.log(`UNKNOWN ${name}`);
    failed++;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`OK ${name}`);
  } catch (e) {
    console.log(`INVALID ${name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
