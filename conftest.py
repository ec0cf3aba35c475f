"""The matrix plugin (`xentcompat.run.plugin`: options, the `cell` parametrization, the record collector) for every
test run from the checkout; an installed xentcompat loads it with `-p xentcompat.run.plugin`."""

pytest_plugins = ["xentcompat.run.plugin"]
