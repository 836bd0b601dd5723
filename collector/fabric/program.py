"""`collect-fab`: Fabric's `fab` program with the host steps' tasks (collector.fabric) at hand.

Fabric's loader finds `-c NAME` only as NAME.py or NAME/__init__.py in the search root or a directory above
it, so an installed package cannot be named with `fab -c`. This program loads a dotted `-c` name
(`collector.fabric`, or a team's own `ops.apigee_tasks`) by importing it, defaults to `collector.fabric`, and
otherwise is `fab`: the same flags, Fabric config files (fabric.yaml in the current directory is the project
config) and ssh config.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from fabric import Config, Executor
from fabric.main import Fab
from invoke.exceptions import CollectionNotFound
from invoke.loader import FilesystemLoader

DEFAULT_COLLECTION = "collector.fabric"


class ModuleLoader(FilesystemLoader):
    """A dotted collection name is imported as a module; a plain one is looked for like `fab` does."""

    def load(self, name: str | None = None) -> tuple[ModuleType, str]:
        if name is None:
            name = str(self.config.tasks.collection_name)
        if "." not in name:
            return super().load(name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                raise CollectionNotFound(name=name, start=self.start) from exc
            raise
        # The project (its fabric.yaml) is where the operator works, not where the package is installed.
        return module, str(Path.cwd())


class CollectorConfig(Config):
    """Fabric's config (prefix `fabric`: fabric.yaml, ~/.fabric.yaml, FABRIC_* variables) defaulting to this
    collection."""

    @staticmethod
    def global_defaults() -> dict[str, Any]:
        defaults: dict[str, Any] = Config.global_defaults()
        defaults["tasks"]["collection_name"] = DEFAULT_COLLECTION
        return defaults


def _version() -> str:
    try:
        return metadata.version("apigee-collector")
    except metadata.PackageNotFoundError:
        return "unknown"


program = Fab(
    name="collect-fab",
    binary="collect-fab",
    version=_version(),
    loader_class=ModuleLoader,
    executor_class=Executor,
    config_class=CollectorConfig,
)


def main() -> None:
    program.run()
