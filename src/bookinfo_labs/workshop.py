"""``pytest features/ --workshop``: a lab step by step, as an instructor walks through it.

Before each step: the step, the manifest it applies, and then (as ``--explain`` does) the
kubectl/curl command equivalent to what it is about to do; Enter runs it (``--workshop=auto``
runs on). At the first failing step: what was expected and what was seen, a hint, and the
mesh stays up with the scenario's config for the learner to look around (the same control
endpoint as ``bookinfo-labs up``, so ``bookinfo-labs get``, ``curl`` and ``proxy-config``
work) until Enter ends the run.
"""

from __future__ import annotations

import re
import sys

import pytest

from .checks.eventually import EventuallyError
from .manifests import ManifestError, find_manifest

#: a lab file a step names (``Given I apply "virtual-service-all-v1.yaml"``)
_NAMED_FILE = re.compile(r'"([\w./-]+\.ya?ml)"')


class Workshop:
    """The pytest plugin --workshop registers: pauses, manifests shown, the stop at a failure."""

    def __init__(self, config: pytest.Config, mode: str):
        self.config = config
        self.auto = mode == "auto"
        self.paused = False  # this step has shown its command and waited already
        self.endpoint = None  # the control endpoint, once the mesh runs

    # -- the terminal ------------------------------------------------------------------
    def say(self, text: str) -> None:
        from .plugin import _write_past_capture

        _write_past_capture(self.config, text)

    def wait(self, prompt: str) -> None:
        """Wait for Enter on the learner's terminal (pytest's capture let go meanwhile); no
        terminal (stdin not a tty) runs on."""
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        capture.suspend_global_capture(in_=True)  # gives fd 0 back to the terminal
        try:
            if sys.stdin is not None and sys.stdin.isatty():
                input(prompt)
        except EOFError:
            pass
        finally:
            capture.resume_global_capture()

    # -- hooks -------------------------------------------------------------------------
    def pytest_bdd_before_scenario(self, request, feature, scenario) -> None:
        lab = request.getfixturevalue("lab")
        lab.before_acting = self.before_acting
        if self.endpoint is None:
            self._serve(request.getfixturevalue("mesh"))

    @pytest.hookimpl(trylast=True)  # after plugin.py's heading of the step
    def pytest_bdd_before_step(self, request, feature, scenario, step, step_func) -> None:
        self.paused = False
        # a file the step names (inline YAML shows in its kubectl apply heredoc)
        for name in _NAMED_FILE.findall(step.name):
            try:
                self.say(f"# {name}:\n" + _indented(find_manifest(name).read_text()))
            except (ManifestError, OSError):
                pass  # not a lab file: the step itself will say so

    def before_acting(self) -> None:
        """Called by the Lab once it has shown a command, before doing it: the step's first
        command waits for Enter."""
        if self.paused:
            return
        self.paused = True
        if not self.auto:
            self.wait("  [Enter] run it, [Ctrl-C] stop > ")

    def pytest_bdd_step_error(self, request, feature, scenario, step, step_func,
                              step_func_args, exception) -> None:
        self.say(f"\n✗ {step.keyword} {step.name}  ({feature.rel_filename}:{step.line_number})")
        self.say(_indented(str(exception).strip()))
        self.say(f"\nHint: {_hint(exception)}")
        self.say(self._look_around())
        self.wait("[Enter] clean up, stop the mesh and end the workshop > ")

    # -- the mesh, for the learner ---------------------------------------------------
    def _serve(self, mesh) -> None:
        from .control import ControlError, ControlServer

        if mesh.name != "local":  # a cluster: kubectl and istioctl reach it already
            self.endpoint = False
            return
        try:
            self.endpoint = ControlServer(mesh, info={"namespace": mesh.namespace,
                                                      "client": mesh.client()}).start()
        except ControlError as exc:  # `bookinfo-labs up` has it: one workshop mesh at a time
            pytest.exit(f"--workshop: {exc}", returncode=int(pytest.ExitCode.USAGE_ERROR))
        self.config.add_cleanup(self.endpoint.stop)

    def _look_around(self) -> str:
        if not self.endpoint:
            return ("The cluster keeps this scenario's config until you press Enter: look "
                    "with kubectl get virtualservices,destinationrules and istioctl proxy-config.")
        return "\n".join([
            "The mesh is still up with this scenario's config. In another terminal:",
            "  bookinfo-labs get                                   # what is applied",
            "  bookinfo-labs curl http://productpage:9080/productpage",
            "  bookinfo-labs proxy-config routes productpage       # what its sidecar got",
            f"  (control endpoint: {self.endpoint.path})"])


def _hint(exception: BaseException) -> str:
    if isinstance(exception, ManifestError):
        return "the manifest was refused before anything was applied: fix the field named above."
    if isinstance(exception, EventuallyError):
        return ("the check kept failing until its deadline, so the config did not do what the "
                "step expects: compare what is applied (bookinfo-labs get) with the routes "
                "the sender's sidecar got (bookinfo-labs proxy-config routes <workload>).")
    if isinstance(exception, AssertionError):
        return ("what came back differs from what the step expects: send the request yourself "
                "(bookinfo-labs curl ...) and look at the routes (bookinfo-labs proxy-config).")
    return "the step could not run; the message above says why."


def _indented(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.rstrip().splitlines())


def register(config: pytest.Config) -> None:
    """Called by plugin.py when --workshop is given."""
    mode = config.getoption("--workshop")
    config.option.explain = True  # the commands are the point of a workshop
    config.option.maxfail = 1  # the first failing step ends the run, once the learner is done
    config.pluginmanager.register(Workshop(config, mode), "bookinfo-labs-workshop")
