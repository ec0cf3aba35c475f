"""Check your own cross-entropy: a user's callable runs through the catalogue as one more loss API.

`spec` names the callable and what it claims (framework, targets, options); `adapter` makes it a registered loss API
(so a cell of it is judged, isolated and recorded as any framework's); `declared` reads the deviations its author
declares expected; `resemblance` names the known cause a deviation of it shares with a framework's API; `check` runs it
all and says what deviates, by cause.
"""
