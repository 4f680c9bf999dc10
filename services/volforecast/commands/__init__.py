"""The commands (train, monitor, predict, report, evaluate, universe runs): orchestration of the
concept modules one level up. A command loads, calls pure functions and writes; it holds no
modelling logic of its own."""
