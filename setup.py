"""Package layout that pyproject.toml cannot express on its own.

Three top-level folders are installed as subpackages of ``structgen``: ``kernels/`` as
``structgen.kernels``, ``integrations/`` as ``structgen.integrations`` and ``grammars/`` (package
data) as ``structgen.grammars``. Subpackages are found at build time, so new ones need no edit
here. Everything else (metadata, dependencies, tools) lives in pyproject.toml.
"""

from setuptools import find_packages, setup

MAPPED = {"structgen.kernels": "kernels", "structgen.integrations": "integrations", "structgen.grammars": "grammars"}

packages = find_packages(include=["structgen", "structgen.*"])
for name, folder in MAPPED.items():
    packages += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]

setup(
    packages=packages,
    package_dir={"": ".", **MAPPED},
    package_data={"structgen": ["py.typed"], "structgen.grammars": ["*.lark"]},
)
