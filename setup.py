"""Only what pyproject.toml cannot say: install `rbridge-lm-eval-hook.pth` beside the packages
(`_rbridge_lm_eval_hook.py` says why), for wheels and editable installs alike."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HOOK = "rbridge-lm-eval-hook.pth"


class BuildWithHook(build_py):
    def run(self) -> None:
        super().run()
        folder = self.build_lib
        if getattr(self, "editable_mode", False):  # an editable wheel is built from install_lib
            folder = self.distribution.get_command_obj("install").install_lib
        Path(folder, HOOK).write_text("import _rbridge_lm_eval_hook\n", encoding="utf-8")

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, HOOK))]


setup(cmdclass={"build_py": BuildWithHook})
