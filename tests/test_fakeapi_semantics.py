"""The fake API server's Kubernetes semantics (tests/fakeapi.py), through the real client.

What the kube backend and the emulated cluster may rely on: server-side apply with field
managers, resourceVersion and generation, label selectors, field validation, admission and
dry runs, deletion, watch callbacks and the controller-side methods, pod logs, exec.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bookinfo_labs.kube.api import KNOWN_TYPES, KubeApi, KubeApiError, load_api_client
from bookinfo_labs.kube.exec import PodExec
from fakeapi import FakeApiServer, SelectorError

VS = KNOWN_TYPES[("networking.istio.io", "VirtualService")]
PODS = KNOWN_TYPES[("", "Pod")]
CONTEXT = "kind-bookinfo-labs"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
STALE = ('Operation cannot be fulfilled on virtualservices.networking.istio.io "reviews": the '
         "object has been modified; please apply your changes to the latest version and try again")


@pytest.fixture
def server():
    fake = FakeApiServer(delete_lag=0).start()
    yield fake
    fake.stop()


def connect(server, tmp_path, name="kubeconfig"):
    path = server.write_kubeconfig(str(tmp_path / name))
    return load_api_client(CONTEXT, path)


@pytest.fixture
def api(server, tmp_path):
    api_client = connect(server, tmp_path)
    yield KubeApi(api_client, timeout_s=10)
    api_client.close()


def vs(name="reviews", labels=None, **spec):
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": name, "namespace": "default",
                         **({"labels": labels} if labels else {})},
            "spec": spec or {"hosts": [name]}}


def apply(api, body, manager="lab", *, force=False, **query):
    q = [("fieldManager", manager), *(("force", True),) * force, *query.items()]
    return api.request("PATCH", VS.path("default", body["metadata"]["name"]), query=q,
                       body=body, content_type=APPLY)


def merge(api, name, patch, *, manager=None, **query):
    q = [*((("fieldManager", manager),) if manager else ()), *query.items()]
    return api.request("PATCH", VS.path("default", name), query=q, body=patch, content_type=MERGE)


def raw(api, method, path, *, query=(), body=None, content_type=None):
    """A request whose response headers the test reads (KubeApi.request returns the body)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type or "application/json"
    serialized = api.api_client.param_serialize(
        method=method, resource_path=path, query_params=list(query) or None,
        header_params=headers, body=body, auth_settings=["BearerToken"])
    response = api.api_client.call_api(*serialized, _request_timeout=10)
    response.read()
    return response


def refused(call) -> KubeApiError:
    with pytest.raises(KubeApiError) as info:
        call()
    return info.value


def owners(obj) -> dict[tuple[str, str], dict]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"]["managedFields"]}


def list_version(api) -> int:
    return int(api.request("GET", VS.path("default"))["metadata"]["resourceVersion"])


# --- server-side apply with field managers ----------------------------------------------------

def test_apply_records_its_manager_and_the_fields_it_set(api):
    obj = apply(api, vs(labels={"app": "reviews"}, hosts=["reviews"],
                        http=[{"route": [{"destination": {"host": "reviews"}}]}]))
    (entry,) = obj["metadata"]["managedFields"]
    assert TIME.fullmatch(entry.pop("time"))
    assert entry == {"manager": "lab", "operation": "Apply",
                     "apiVersion": "networking.istio.io/v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}},
                                  "f:spec": {"f:hosts": {}, "f:http": {}}}}  # lists: atomic


def test_an_apply_changing_another_managers_field_is_a_conflict(api):
    apply(api, vs(hosts=["reviews"], gateways=["mesh"], exportTo=["."]))
    before = apply(api, vs(hosts=["reviews"], gateways=["mesh"], exportTo=["."]))
    one = refused(lambda: apply(api, vs(hosts=["ratings"]), "other"))
    assert (one.status, one.reason) == (409, "Conflict")
    assert one.message == 'Apply failed with 1 conflict: conflict with "lab": .spec.hosts'
    two = refused(lambda: apply(api, vs(hosts=["ratings"], gateways=["gw"], exportTo=["."]),
                                "other"))
    assert two.message == ('Apply failed with 2 conflicts: conflicts with "lab":\n'
                           "- .spec.gateways\n- .spec.hosts")
    after = api.get(VS, "default", "reviews")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"]["hosts"] == ["reviews"]


def test_the_same_value_is_shared_and_force_takes_a_field_over(api):
    apply(api, vs(hosts=["reviews"], gateways=["mesh"]))
    shared = apply(api, vs(hosts=["reviews"]), "other")  # same value: no conflict
    assert owners(shared)[("other", "Apply")] == {"f:spec": {"f:hosts": {}}}
    assert owners(shared)[("lab", "Apply")] == {"f:spec": {"f:gateways": {}, "f:hosts": {}}}
    forced = apply(api, vs(hosts=["ratings"]), "other", force=True)
    assert forced["spec"] == {"hosts": ["ratings"], "gateways": ["mesh"]}
    assert owners(forced)[("lab", "Apply")] == {"f:spec": {"f:gateways": {}}}
    back = refused(lambda: apply(api, vs(hosts=["reviews"], gateways=["mesh"])))
    assert back.message == 'Apply failed with 1 conflict: conflict with "other": .spec.hosts'


def test_fields_a_manager_stops_applying_go_unless_another_owns_them(api):
    apply(api, vs(labels={"a": "1", "b": "2"}, hosts=["reviews"], gateways=["mesh"]))
    apply(api, vs(labels={"b": "2"}, hosts=["reviews"]), "other")
    obj = apply(api, vs(labels={"a": "1"}, hosts=["reviews"]))
    assert obj["spec"] == {"hosts": ["reviews"]}  # gateways: lab's alone, gone
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}  # b: other's too, kept
    obj = apply(api, {**vs(), "spec": {"hosts": ["reviews"]}}, "other")
    assert obj["metadata"].get("labels") == {"a": "1"}  # other dropped b, lab had let go


def test_a_merge_patch_is_an_update_by_its_field_manager(api):
    apply(api, vs(hosts=["reviews"], gateways=["mesh"]))
    obj = merge(api, "reviews", {"spec": {"hosts": ["ratings"]}}, manager="editor")
    update = owners(obj)[("editor", "Update")]
    assert update == {"f:spec": {"f:hosts": {}}}
    assert owners(obj)[("lab", "Apply")] == {"f:spec": {"f:gateways": {}}}  # no longer hosts
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "editor")
    conflict = refused(lambda: apply(api, vs(hosts=["reviews"], gateways=["mesh"])))
    assert conflict.message == ('Apply failed with 1 conflict: conflict with "editor" using '
                                f"networking.istio.io/v1 at {entry['time']}: .spec.hosts")
    # no fieldManager: the API server names the manager after the client's User-Agent
    obj = merge(api, "reviews", {"metadata": {"annotations": {"note": "x"}}})
    assert owners(obj)[("OpenAPI-Generator", "Update")] == {
        "f:metadata": {"f:annotations": {"f:note": {}}}}


def test_status_is_neither_applied_nor_owned(api, server):
    obj = apply(api, {**vs(), "status": {"validationMessages": ["made up"]}})
    assert "status" not in obj
    server.update_status("networking.istio.io", "virtualservices", "default", "reviews",
                         {"observedGeneration": 1})
    obj = apply(api, {**vs(), "status": {"observedGeneration": 9}})
    assert obj["status"] == {"observedGeneration": 1}
    assert "f:status" not in owners(obj)[("lab", "Apply")]


# --- resourceVersion and generation ----------------------------------------------------------

def test_one_resource_version_counter_new_on_every_real_write(api, server):
    versions = [int(apply(api, vs())["metadata"]["resourceVersion"])]
    assert apply(api, vs())["metadata"]["resourceVersion"] == str(versions[0])  # no-op apply
    assert list_version(api) == versions[0]
    versions.append(int(merge(api, "reviews", {"metadata": {"labels": {"x": "1"}}})
                        ["metadata"]["resourceVersion"]))
    status = server.update_status("networking.istio.io", "virtualservices", "default",
                                  "reviews", {"ok": True})
    versions.append(int(status["metadata"]["resourceVersion"]))
    server.delete_lag = 2  # two reads: the list and the get below
    api.request("DELETE", VS.path("default", "reviews"))
    versions.append(list_version(api))  # the deletion mark is a write too
    marked = api.get(VS, "default", "reviews")
    assert marked["metadata"]["resourceVersion"] == str(versions[-1])
    assert marked["metadata"]["deletionTimestamp"]
    assert versions == sorted(set(versions)) and len(versions) == 4


def test_a_body_with_an_old_resource_version_is_refused(api):
    first = apply(api, vs())
    old = first["metadata"]["resourceVersion"]
    merge(api, "reviews", {"spec": {"gateways": ["mesh"]}})
    stale = refused(lambda: merge(api, "reviews", {"metadata": {"resourceVersion": old},
                                                   "spec": {"hosts": ["x"]}}))
    assert (stale.status, stale.reason, stale.message) == (409, "Conflict", STALE)
    body = vs()
    body["metadata"]["resourceVersion"] = old
    assert refused(lambda: apply(api, body)).message == STALE
    put = refused(lambda: api.request("PUT", VS.path("default", "reviews"), body=body))
    assert put.message == STALE
    current = api.get(VS, "default", "reviews")["metadata"]["resourceVersion"]
    done = merge(api, "reviews", {"metadata": {"resourceVersion": current},
                                  "spec": {"hosts": ["x"]}})
    assert done["spec"]["hosts"] == ["x"]
    assert int(done["metadata"]["resourceVersion"]) > int(current)


def test_generation_counts_changes_outside_metadata_and_status(api, server):
    assert apply(api, vs())["metadata"]["generation"] == 1
    obj = merge(api, "reviews", {"metadata": {"labels": {"a": "1"}, "annotations": {"b": "2"}}})
    assert obj["metadata"]["generation"] == 1
    assert merge(api, "reviews", {"spec": {"gateways": ["mesh"]}})["metadata"]["generation"] == 2
    key = ("networking.istio.io", "virtualservices", "default", "reviews")
    assert server.update_status(*key, {"ok": True})["metadata"]["generation"] == 2
    labelled = server.mutate(*key, lambda o: o["metadata"]["labels"].update(c="3"))
    assert labelled["metadata"]["generation"] == 2
    respecced = server.mutate(*key, lambda o: o["spec"].update(hosts=["x"]))
    assert respecced["metadata"]["generation"] == 3
    assert api.get(VS, "default", "reviews")["metadata"]["generation"] == 3


def test_put_seeds_as_before(server):
    events = []
    server.watch(lambda event, obj: events.append(event))
    seeded = server.put({**vs("seeded"), "metadata": {"name": "seeded", "generation": 7}})
    plain = server.put(vs("plain"))
    assert seeded["metadata"]["generation"] == 7 and plain["metadata"]["generation"] == 1
    assert plain["metadata"]["creationTimestamp"] == "2026-11-21T10:00:00Z"
    assert plain["metadata"]["namespace"] == "default"
    assert server.get_object("networking.istio.io", "virtualservices", "default", "plain") is plain
    assert events == []  # seeding is not a write


# --- label selectors ---------------------------------------------------------------------------

@pytest.fixture
def labelled(server):
    for name, labels in {"a": {"app": "reviews", "version": "v1"},
                         "b": {"app": "reviews", "version": "v2", "canary": "true"},
                         "c": {"app": "ratings", "version": "v3"},
                         "d": {"app": "ratings"},
                         "e": {}}.items():
        server.put(vs(name, labels=labels))


@pytest.mark.parametrize("selector, names", [
    ("app=reviews", "ab"),
    ("app==reviews", "ab"),
    ("app!=reviews", "cde"),  # no app label at all matches too
    ("version", "abc"),
    ("!version", "de"),
    ("version in (v1,v3)", "ac"),
    ("version notin (v1, v3)", "bde"),
    ("app=reviews,!canary", "a"),
    (" app in (reviews, ratings) , version notin (v2) ", "acd"),
    ("app in (ratings),version", "c"),
    ("", "abcde"),
])
def test_label_selectors_in_the_full_syntax(api, labelled, selector, names):
    assert "".join(o["metadata"]["name"] for o in api.list(VS, "default", selector)) == names


@pytest.mark.parametrize("selector, message", [
    ("version in (v1", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("app reviews", "unable to parse requirement: found 'reviews', expected: in, notin, =, ==, "
                    "!=, gt, lt"),
    ("app=reviews version", "found 'version', expected: ',' or 'end of string'"),
    ("app=(reviews)", "unable to parse requirement: found '(', expected: identifier"),
    ("app=reviews,", "found '', expected: identifier after ','"),
    ("app=a b", "found 'b', expected: ',' or 'end of string'"),
    ("app=re*views", 'unable to parse requirement: values[0]: Invalid value: "re*views": a valid '
                     "label must be an empty string or consist of alphanumeric characters, '-', "
                     "'_' or '.', and must start and end with an alphanumeric character"),
])
def test_an_unparseable_selector_is_a_bad_request(api, labelled, server, selector, message):
    error = refused(lambda: api.list(VS, "default", selector))
    assert (error.status, error.reason, error.message) == (400, "BadRequest", message)
    with pytest.raises(SelectorError, match=re.escape(message)):
        server.list_objects("networking.istio.io", "virtualservices", selector=selector)


# --- field validation ------------------------------------------------------------------------

TYPO = vs(hosts=["reviews"], http=[{"route": [{"destination": {"host": "reviews"}, "wieght": 1}]}],
          bogus=True)


def test_strict_refuses_naming_every_unknown_field(api, server):
    error = refused(lambda: apply(api, TYPO, fieldValidation="Strict"))
    assert (error.status, error.reason) == (400, "BadRequest")
    assert error.message == (".spec.http[0].route[0].wieght: field not declared in schema, "
                             ".spec.bogus: field not declared in schema")
    assert api.get(VS, "default", "reviews") is None


@pytest.mark.parametrize("mode", [None, "Warn", "Ignore"])
def test_warn_by_default_and_ignore_drop_the_unknown_fields(api, mode):
    query = [("fieldManager", "lab")] + ([("fieldValidation", mode)] if mode else [])
    response = raw(api, "PATCH", VS.path("default", "reviews"), query=query, body=TYPO,
                   content_type=APPLY)
    assert response.status == 201
    warnings = response.headers.getlist("Warning")
    if mode == "Ignore":
        assert warnings == []
    else:
        assert warnings == ['299 - "unknown field \\".spec.http[0].route[0].wieght\\""',
                            '299 - "unknown field \\".spec.bogus\\""']
    assert api.get(VS, "default", "reviews")["spec"] == {
        "hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]}


def test_a_custom_validator_checks_merge_patches_too(tmp_path):
    seen = []

    def validator(obj):
        seen.append(obj["kind"])
        return [".spec.extra"] if "extra" in (obj.get("spec") or {}) else []

    server = FakeApiServer(validator=validator, delete_lag=0).start()
    api_client = connect(server, tmp_path)
    try:
        api = KubeApi(api_client, timeout_s=10)
        apply(api, vs(), fieldValidation="Strict")
        strict = refused(lambda: merge(api, "reviews", {"spec": {"extra": 1}},
                                       fieldValidation="Strict"))
        assert strict.message == ".spec.extra: field not declared in schema"
        response = raw(api, "PATCH", VS.path("default", "reviews"), body={"spec": {"extra": 1}},
                       content_type=MERGE)
        assert response.headers.getlist("Warning") == ['299 - "unknown field \\".spec.extra\\""']
        assert "extra" not in api.get(VS, "default", "reviews")["spec"]
        assert set(seen) == {"VirtualService"}  # the whole object, kind and all
        loose = refused(lambda: merge(api, "reviews", {}, fieldValidation="Loose"))
        assert (loose.status, loose.reason) == (400, "BadRequest")
    finally:
        api_client.close()
        server.stop()


# --- admission and dry runs --------------------------------------------------------------------

def test_admission_sees_every_mutating_request_and_can_deny(api, server):
    calls = []

    def webhook(operation, new, old, dry_run):
        calls.append((operation, new["spec"].get("hosts"), old and old["spec"]["hosts"], dry_run))
        new["spec"]["hosts"] = ["tampered"]  # a copy: the hook cannot change what is stored
        return "hosts must not be empty" if new["spec"].get("gateways") == [] else None

    server.admission = webhook
    apply(api, vs(hosts=["a"]))
    apply(api, vs(hosts=["b"]), dryRun="All")
    merge(api, "reviews", {"spec": {"hosts": ["c"]}})
    denied = refused(lambda: merge(api, "reviews", {"spec": {"gateways": []}}))
    assert (denied.status, denied.reason, denied.message) == (
        400, "BadRequest",
        'admission webhook "validation.istio.io" denied the request: hosts must not be empty')
    api.request("DELETE", VS.path("default", "reviews"))
    assert calls == [("CREATE", ["a"], None, False), ("UPDATE", ["b"], ["a"], True),
                     ("UPDATE", ["c"], ["a"], False), ("UPDATE", ["c"], ["c"], False),
                     ("DELETE", ["c"], ["c"], False)]
    server.deny["ratings"] = "configuration is invalid"  # the old switch works on top
    assert "configuration is invalid" in refused(lambda: apply(api, vs("ratings"))).message


def test_a_dry_run_validates_and_admits_but_writes_nothing(api, server):
    events = []
    server.watch(lambda event, obj: events.append(event))
    answer = apply(api, vs(hosts=["a"]), dryRun="All")
    assert answer["spec"] == {"hosts": ["a"]}
    assert api.get(VS, "default", "reviews") is None
    created = apply(api, vs(hosts=["a"]))
    version = list_version(api)
    events.clear()
    assert apply(api, vs(hosts=["b"]), dryRun="All")["spec"] == {"hosts": ["b"]}
    merge(api, "reviews", {"spec": {"hosts": ["c"]}}, dryRun="All")
    api.request("DELETE", VS.path("default", "reviews"), query=[("dryRun", "All")])
    assert api.get(VS, "default", "reviews") == created
    assert list_version(api) == version and events == []
    assert refused(lambda: apply(api, TYPO, fieldValidation="Strict", dryRun="All")).status == 400
    server.deny["reviews"] = "no"
    assert refused(lambda: apply(api, vs(hosts=["b"]), dryRun="All")).status == 400


# --- deletion ----------------------------------------------------------------------------------

def test_only_lag_kinds_linger_after_a_delete(tmp_path):
    server = FakeApiServer(delete_lag=2, lag_kinds={"Pod"}).start()
    api_client = connect(server, tmp_path)
    try:
        api = KubeApi(api_client, timeout_s=10)
        server.add_deployment("web")
        apply(api, vs())
        api.request("DELETE", VS.path("default", "reviews"))
        assert api.get(VS, "default", "reviews") is None  # not a lag kind: gone at once
        pod = "web-5d8f7c9b6d-x2k4p"
        api.request("DELETE", PODS.path("default", pod))
        reads = [api.get(PODS, "default", pod) for _ in range(3)]
        lingering = [bool(r and r["metadata"]["deletionTimestamp"]) for r in reads]
        assert lingering == [True, True, False]
        missing = refused(lambda: api.request("DELETE", VS.path("default", "nope")))
        assert (missing.status, missing.message) == (
            404, 'virtualservices.networking.istio.io "nope" not found')
    finally:
        api_client.close()
        server.stop()


# --- watchers ----------------------------------------------------------------------------------

def test_watchers_hear_every_committed_write_in_order(api, server):
    events = []
    server.watch(lambda event, obj: events.append((
        event, obj["metadata"]["resourceVersion"], "deletionTimestamp" in obj["metadata"])))
    versions = [apply(api, vs())["metadata"]["resourceVersion"]]
    apply(api, vs())  # no-op: no event
    patched = merge(api, "reviews", {"spec": {"gateways": ["mesh"]}})
    versions.append(patched["metadata"]["resourceVersion"])
    versions.append(server.update_status("networking.istio.io", "virtualservices", "default",
                                         "reviews", {"ok": True})["metadata"]["resourceVersion"])
    server.delete_lag = 1
    api.request("DELETE", VS.path("default", "reviews"))
    versions.append(list_version(api))  # this list is the read that uses the lag up
    assert api.get(VS, "default", "reviews") is None  # the lag ran out: removed now
    assert [e[0] for e in events] == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"]
    assert [e[1] for e in events[:4]] == [str(v) for v in versions]
    assert int(events[4][1]) > int(versions[-1])  # the removal is a write too
    assert [e[2] for e in events] == [False, False, False, True, True]


def test_watchers_run_outside_the_lock_get_copies_and_may_write(api, server):
    seen, other_thread = [], []

    def controller(event, obj):
        seen.append((event, obj["metadata"]["name"]))
        obj["spec"]["hosts"] = ["scribbled"]  # a copy
        # another thread gets the lock at once: the callback does not hold it
        reader = threading.Thread(
            target=lambda: server.list_objects("networking.istio.io", "virtualservices"))
        reader.start()
        reader.join(5)
        other_thread.append(not reader.is_alive())
        if event == "ADDED":  # reacting in place: its own write is delivered after this one
            server.update_status("networking.istio.io", "virtualservices", "default",
                                 obj["metadata"]["name"], {"seen": True})

    def broken(event, obj):
        raise RuntimeError("a watcher's bug")

    server.watch(controller)
    stop_broken = server.watch(broken)
    apply(api, vs())
    assert seen == [("ADDED", "reviews"), ("MODIFIED", "reviews")]
    assert other_thread == [True, True]
    stored = api.get(VS, "default", "reviews")
    assert stored["spec"]["hosts"] == ["reviews"] and stored["status"] == {"seen": True}
    assert [str(e) for e in server.watch_errors] == ["a watcher's bug"] * 2
    stop_broken()
    merge(api, "reviews", {"spec": {"gateways": ["mesh"]}})
    assert len(server.watch_errors) == 2 and seen[-1] == ("MODIFIED", "reviews")


# --- controller-side methods -----------------------------------------------------------------

def pod(name, **labels):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels,
                         "resourceVersion": "1", "uid": "copied"},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            "status": {"phase": "Running"}}


def test_controller_methods(api, server):
    events = []
    server.watch(lambda event, obj: events.append((event, obj["metadata"]["name"])))
    created = server.create(pod("p1", app="web"))
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] != "copied" and meta["resourceVersion"] != "1"
    age = datetime.now(timezone.utc) - datetime.strptime(
        meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert timedelta(0) <= age < timedelta(minutes=1)
    assert created["status"] == {"phase": "Running"}
    with pytest.raises(ValueError, match='pods "p1" already exists'):
        server.create(pod("p1"))
    with pytest.raises(ValueError, match='namespaces "nowhere" not found'):
        server.create({**pod("p2"), "metadata": {"name": "p2", "namespace": "nowhere"}})
    key = ("", "pods", "default", "p1")
    status = server.update_status(*key, {"phase": "Succeeded"})
    assert status["status"] == {"phase": "Succeeded"} and status["metadata"]["generation"] == 1
    assert server.update_status(*key, {"phase": "Succeeded"}) == status  # the same: no write
    renamed = server.mutate(*key, lambda o: o["metadata"].update(name="other", labels={"x": "1"}))
    assert renamed["metadata"]["name"] == "p1" and renamed["metadata"]["labels"] == {"x": "1"}
    server.create(pod("p2", x="1"))
    copies = server.list_objects("", "pods", "default", "x=1")
    assert [o["metadata"]["name"] for o in copies] == ["p1", "p2"]
    copies[0]["spec"]["containers"] = []
    assert server.get_object(*key)["spec"]["containers"] != []
    assert server.list_objects("", "pods", "kube-system") == []
    server.remove(*key)
    assert api.get(PODS, "default", "p1") is None
    assert events == [("ADDED", "p1"), ("MODIFIED", "p1"), ("MODIFIED", "p1"), ("ADDED", "p2"),
                      ("DELETED", "p1")]
    for method, args in ((server.update_status, ({},)), (server.mutate, (lambda o: None,)),
                         (server.remove, ())):
        with pytest.raises(KeyError):
            method(*key, *args)


def test_controller_methods_are_thread_safe_while_requests_run(api, server):
    errors = []

    def create(worker):
        try:
            for i in range(25):
                server.create(pod(f"w{worker}-{i}", worker=str(worker)))
                server.mutate("", "pods", "default", f"w{worker}-{i}",
                              lambda o: o["spec"].update(priority=i))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        api.list(PODS, "default", "worker")
    for t in threads:
        t.join()
    assert errors == []
    made = server.list_objects("", "pods", "default", "worker")
    assert len(made) == 100 and all(o["metadata"]["generation"] == 2 for o in made)
    assert len({o["metadata"]["resourceVersion"] for o in made}) == 100


def test_api_created_objects_carry_the_current_time_and_post_put_work(api):
    created = api.request("POST", VS.path("default"), body=vs("posted"))
    stamp = datetime.strptime(created["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(datetime.now(timezone.utc).replace(tzinfo=None) - stamp) < timedelta(minutes=1)
    again = refused(lambda: api.request("POST", VS.path("default"), body=vs("posted")))
    assert (again.status, again.reason, again.message) == (
        409, "AlreadyExists", 'virtualservices.networking.istio.io "posted" already exists')
    replaced = api.request("PUT", VS.path("default", "posted"),
                           body={**vs("posted"), "spec": {"hosts": ["x"]}})
    assert replaced["spec"] == {"hosts": ["x"]} and replaced["metadata"]["generation"] == 2
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert owners(replaced) == {("OpenAPI-Generator", "Update"): {
        "f:spec": {"f:hosts": {}}}}


# --- pod logs and exec ---------------------------------------------------------------------------

def test_pod_logs_come_from_the_log_handler_checked_like_the_api_server(api, server):
    calls = []
    server.log_handler = lambda *args: calls.append(args) or f"log of {args[2]}\n"
    server.add_deployment("web")  # containers web and istio-proxy
    core = k8s.CoreV1Api(api.api_client)
    pod_name = "web-5d8f7c9b6d-x2k4p"
    assert core.read_namespaced_pod_log(pod_name, "default", container="web",
                                        since_seconds=5) == "log of web\n"
    assert calls == [("default", pod_name, "web", 5)]

    def status(**query):
        with pytest.raises(ApiException) as info:
            core.read_namespaced_pod_log(pod_name, "default", **query)
        return info.value.status, info.value.body

    code, body = status()
    assert code == 400 and (f"a container name must be specified for pod {pod_name}, "
                            "choose one of: [web istio-proxy]") in body
    code, body = status(container="nope")
    assert code == 400 and f"container nope is not valid for pod {pod_name}" in body
    code, body = status(container="web", since_seconds=0)
    assert code == 422 and "sinceSeconds: Invalid value: 0: must be greater than 0" in body
    bad = refused(lambda: api.request("GET", PODS.path("default", pod_name) + "/log",
                                      query=[("container", "web"), ("sinceSeconds", "soon")]))
    assert bad.status == 400
    server.create(pod("single"))  # one container: the one meant
    assert core.read_namespaced_pod_log("single", "default") == "log of app\n"
    server.log_handler = None
    server.pod_logs[("default", "single", "app")] = "from pod_logs\n"
    assert core.read_namespaced_pod_log("single", "default") == "from pod_logs\n"
    assert core.read_namespaced_pod_log(pod_name, "default", container="web") == ""


def test_a_long_exec_does_not_hold_up_other_requests(api, server, tmp_path):
    started, release = threading.Event(), threading.Event()

    def slow(namespace, pod_name, container, command):
        started.set()
        release.wait(60)  # as long as the test needs: a command running for tens of seconds
        return b"done\n", b"", 0

    server.exec_handler = slow
    server.add_deployment("web")
    exec_client = connect(server, tmp_path, "exec-kubeconfig")
    result = []
    runner = threading.Thread(target=lambda: result.append(
        PodExec(exec_client).run("default", "web-5d8f7c9b6d-x2k4p", "web", ["sleep", "30"])))
    runner.start()
    try:
        assert started.wait(10)
        assert api.get(PODS, "default", "web-5d8f7c9b6d-x2k4p")["metadata"]["name"]
        assert apply(api, vs())["metadata"]["generation"] == 1
        assert not result  # the exec is still running
    finally:
        release.set()
        runner.join(30)
        exec_client.close()
    assert [(r.stdout, r.exit_code) for r in result] == [(b"done\n", 0)]
