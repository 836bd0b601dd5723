"""YAML documents of inventories and vars files, with Ansible's `!vault` and `!unsafe` tags understood."""

from __future__ import annotations

from pathlib import Path

import yaml

from collector.errors import InputError

# How ansible-inventory --list prints a value it leaves encrypted; the built-in reader uses the same shape so
# both readers hand the same value to the checks.
VAULT_KEY = "__ansible_vault"
VAULT_HEADER = "$ANSIBLE_VAULT;"


class _AnsibleLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus the two tags Ansible adds to YAML."""


def _vault(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, str]:
    return {VAULT_KEY: str(loader.construct_scalar(node))}  # type: ignore[arg-type]  # a !vault node is a scalar


def _unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> object:
    # !unsafe only stops Ansible from templating the value; the value itself is the plain one.
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


_AnsibleLoader.add_constructor("!vault", _vault)
_AnsibleLoader.add_constructor("!unsafe", _unsafe)


def parse_yaml(path: Path, text: str) -> object:
    """The document in `text`; a syntax error is an InputError naming `path` and the line."""
    try:
        return yaml.load(text, Loader=_AnsibleLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise InputError(path, f"{where}not valid YAML: {e.problem}") from e
    except yaml.YAMLError as e:
        raise InputError(path, f"not valid YAML: {e}") from e


def is_vaulted(value: object) -> bool:
    """Whether `value` is an Ansible vault-encrypted string (as either reader hands it over)."""
    return isinstance(value, dict) and set(value) == {VAULT_KEY}
