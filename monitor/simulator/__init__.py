"""A realistic generator of canonical call events (``monitor simulate``).

Calls arrive per contract and line with a local-time diurnal load, go through the IVR, wait in
the queue, are answered, abandoned or dropped, and sometimes need TTY or an interpreter.
Scenarios shift those odds the way the source letter's bad weeks did. Output is repeatable for a
given ``--seed``.
"""

from monitor.simulator.config import SCENARIOS, Scenario, SimulationConfig, add_simulate_arguments
from monitor.simulator.generator import generate_events, write_events_file

__all__ = [
    "SCENARIOS",
    "Scenario",
    "SimulationConfig",
    "add_simulate_arguments",
    "generate_events",
    "write_events_file",
]
