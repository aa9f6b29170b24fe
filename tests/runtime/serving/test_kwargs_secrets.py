"""Model.__init__ kwargs by signature, secrets resolution, environment, config and packages."""

from __future__ import annotations

import json

from tests.runtime.harness import make_app

KWARGS_MODEL = """
    class Model:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def predict(self, inputs):
            k = self.kwargs
            secrets = k["secrets"]
            name = inputs.get("secret")
            out = {"kwargs": sorted(k), "data_dir": str(k["data_dir"]),
                   "model_name": k["config"]["model_name"], "environment": k["environment"],
                   "resolver": type(k["lazy_data_resolver"]).__name__, "len": len(secrets)}
            if name:
                try:
                    out["value"] = secrets[name]
                except KeyError as exc:  # SecretNotFound subclasses KeyError in pack
                    out["error"] = f"{type(exc).__name__}: {exc}"
                out["get"] = secrets.get(name)
                out["contains"] = name in secrets
            return out
"""

NAMED_MODEL = """
    class Model:
        def __init__(self, config, data_dir):
            self.names = ["config", "data_dir"]

        def predict(self, inputs):
            return self.names
"""

NO_KWARGS_MODEL = """
    import os


    class Model:
        def __init__(self):
            pass

        def predict(self, inputs):
            import helper  # a sibling of model.py
            import bundled  # from /packages
            return {"helper": helper.VALUE, "bundled": bundled.VALUE, "cwd": os.getcwd(),
                    "greeting": os.environ.get("GREETING")}
"""

SECRETS = {"from_file": None, "from_env": None, "both": None, "placeholder": None, "unset": None,
           "newline": None}


def test_all_kwargs_are_passed_to_a_kwargs_constructor(tmp_path, runtimes):
    app = make_app(tmp_path, KWARGS_MODEL, config={"model_name": "kw", "secrets": SECRETS})
    (app.dynamic / "environment").write_text(json.dumps({"name": "production"}))
    rt = runtimes(app)
    rt.wait_ready()
    status, body = rt.predict({})
    assert status == 200
    assert body["kwargs"] == ["config", "data_dir", "environment", "lazy_data_resolver", "secrets"]
    assert body["data_dir"] == str(app.root / "data")
    assert body["model_name"] == "kw"
    assert body["environment"] == {"name": "production"}
    assert body["resolver"] == "LazyDataResolver"
    assert body["len"] == len(SECRETS)


def test_only_named_kwargs_are_passed(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, NAMED_MODEL))
    rt.wait_ready()
    assert rt.predict({}) == (200, ["config", "data_dir"])


def test_no_kwargs_model_siblings_packages_cwd_and_environment_variables(tmp_path, runtimes):
    app = make_app(tmp_path, NO_KWARGS_MODEL, config={"environment_variables": {"GREETING": "hello"}},
                   files={"model/helper.py": "VALUE = 'sibling'\n"})
    (tmp_path / "packages").mkdir()
    (tmp_path / "packages" / "bundled.py").write_text("VALUE = 'bundled'\n")
    rt = runtimes(app)
    rt.wait_ready()
    assert rt.predict({}) == (200, {"helper": "sibling", "bundled": "bundled", "cwd": str(app.root),
                                    "greeting": "hello"})


def test_secrets_resolution_order(tmp_path, runtimes):
    app = make_app(tmp_path, KWARGS_MODEL, config={"secrets": SECRETS},
                   secrets={"from_file": "file-value", "both": "file-wins", "placeholder": "***",
                            "newline": "kept\n"})
    rt = runtimes(app, TRUSS_SECRET_from_env="env-value", TRUSS_SECRET_both="env-loses",
                  TRUSS_SECRET_undeclared="never")
    rt.wait_ready()

    def lookup(name):
        status, body = rt.predict({"secret": name})
        assert status == 200
        return body

    assert lookup("from_file")["value"] == "file-value"
    assert lookup("from_env")["value"] == "env-value"
    assert lookup("both")["value"] == "file-wins"  # the file comes first
    assert lookup("newline")["value"] == "kept\n"  # verbatim, as in Truss
    for missing in ("placeholder", "unset"):
        body = lookup(missing)
        assert body["error"].startswith(f"SecretNotFound: Secret '{missing}' is declared but has no value")
        assert body["get"] is None and body["contains"] is False
    body = lookup("undeclared")  # in the environment, but not declared in config
    assert "is not declared in config.yaml" in body["error"]
    assert body["get"] is None


def test_without_the_json_config_the_runtime_exits_with_a_clear_message(tmp_path, runtimes):
    rt = runtimes(make_app(tmp_path, NAMED_MODEL, yaml_only=True))
    assert rt.wait_exit(30) == 1
    logs = rt.logs()
    assert "config.json is missing" in logs and "re-render the image" in logs
