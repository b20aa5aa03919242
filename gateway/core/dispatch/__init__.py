"""Central dispatch: planner, runner and delivery report (no websockets, no database)."""
