"""The MLflow client people already run (PyPI mlflow-skinny) against the registry's MLflow API.

usage: MLFLOW_TRACKING_TOKEN=... mlflow_client.py BASE_URL
Prints JSON with what it created and read back.
"""
import json
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

base = sys.argv[1]
c = MlflowClient(tracking_uri=base, registry_uri=base)
out = {}


def error(f):
    try:
        f()
        return "no error"
    except MlflowException as e:
        return f"{e.error_code}: {e.message}"


rm = c.create_registered_model("fraud", tags={"team": "risk"}, description="Fraud scoring")
out["created"] = rm.name
v1 = c.create_model_version(
    "fraud", "s3://models/fraud/1", tags={"goose.digest": "ab" * 32}, description="first"
)
v2 = c.create_model_version("fraud", "s3://models/fraud/2", run_id="run-2")
out["versions"] = [v1.version, v2.version]
c.set_registered_model_alias("fraud", "canary", v2.version)
out["by_alias"] = c.get_model_version_by_alias("fraud", "canary").version
out["champion"] = error(lambda: c.set_registered_model_alias("fraud", "champion", v1.version))
c.set_registered_model_tag("fraud", "reviewed-by", "ana")
c.set_model_version_tag("fraud", v1.version, "validated", "yes")
got = c.get_registered_model("fraud")
out["model"] = {
    "name": got.name,
    "description": got.description,
    "tags": got.tags,
    "aliases": got.aliases,
    "latest": [v.version for v in got.latest_versions],
}
out["search"] = [m.name for m in c.search_registered_models(filter_string="name LIKE 'fr%'")]
out["search_none"] = [m.name for m in c.search_registered_models(filter_string="name = 'nope'")]
out["version_search"] = sorted(v.version for v in c.search_model_versions("name='fraud'"))
out["run_search"] = [v.version for v in c.search_model_versions("run_id='run-2'")]
mv = c.get_model_version("fraud", v1.version)
out["v1"] = {
    "source": mv.source,
    "tags": mv.tags,
    "status": mv.status,
    "description": mv.description,
}
out["missing"] = error(lambda: c.get_registered_model("nope"))
out["duplicate"] = error(lambda: c.create_registered_model("fraud"))
c.delete_registered_model_alias("fraud", "canary")
out["alias_gone"] = error(lambda: c.get_model_version_by_alias("fraud", "canary"))
print(json.dumps(out))
