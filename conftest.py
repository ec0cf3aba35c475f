"""The matrix plugin (`xentcompat.plugin`: options, the `cell` parametrization, the record collector) for every
test run from the checkout; an installed xentcompat loads it with `-p xentcompat.plugin`."""

pytest_plugins = ["xentcompat.plugin"]
