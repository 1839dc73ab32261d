"""The pinned framework environment is what the tests think it is."""

import pathlib
import re

from support import require

PINS = pathlib.Path(__file__).resolve().parents[2] / "requirements" / "frameworks.txt"


def _pins():
    out = {}
    for line in PINS.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_every_pinned_framework_imports_at_its_pinned_version():
    from importlib.metadata import version

    pins = _pins()
    for dist in ("tensorflow-cpu", "keras", "torch", "jax", "jaxlib", "orbax-checkpoint", "safetensors", "lightning",
                 "numpy"):
        assert version(dist).split("+")[0] == pins[dist], dist
    for module in ("tensorflow", "keras", "torch", "jax", "orbax.checkpoint", "safetensors", "lightning"):
        require(module)
