"""Print the runtime requirements in pyproject.toml, one a line, for the image's build stage:
the dependencies, and those of each optional extra named (comma-separated) in argv[2].

    python3 requirements.py pyproject.toml [msk,...]
"""

import sys
import tomllib

with open(sys.argv[1], "rb") as file:
    project = tomllib.load(file)["project"]
extras = [name for name in (sys.argv[2] if len(sys.argv) > 2 else "").split(",") if name]
for requirement in project["dependencies"]:
    print(requirement)
for extra in extras:
    for requirement in project["optional-dependencies"][extra]:
        print(requirement)
