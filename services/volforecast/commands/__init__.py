"""The commands of ``volforecast``: one module per command (train, monitor, predict, report,
evaluate, select, replay), each with ``run(settings, args, say) -> exit code``, which the CLI
calls. A command only orchestrates: it calls library modules, prints and writes what they
return, and chooses the exit code. No command imports another; what two commands share is a
library module one level up (``training``, ``monitoring``, ``forecasting``, ``universe``,
``walkforward``, ``scoring``, ...)."""
