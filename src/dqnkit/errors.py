"""The one exception type that means "the user asked for something we cannot do"."""


class UserError(Exception):
    """A mistake the user can fix: the CLI prints its message on one line and exits with code 2."""


class TrainingFailed(Exception):
    """Training stopped on a failure that is not the user's input (e.g. an env worker died); the CLI prints one
    line and exits with code 1. The run folder already holds final.pth.tar and summary.json when it is raised."""
