"""Central dispatch: planner, runner and delivery report (no websockets, no database).

- ``planner`` / ``columns``: pure numpy planning (proportional, merit order) with SoC/energy
  floors, headroom, station/site limits and minimum powers -> ``DispatchPlan``.
- ``runner`` (``DispatchRunner``, ``async with``) runs each dispatch (``execution``): profile
  conflict check, SetChargingProfile / UpdateDynamicSchedule, monitoring, drop-outs, closed-loop
  re-planning, clearing, report; ``service`` (``DispatchService``) is what the API calls.
- ``report`` / ``render``: target vs delivered, energy, attribution; JSON, CSV, PNG.
- ``ports``: what dispatch needs from fleet (FleetView) and CSMS (StationCommands).
"""
