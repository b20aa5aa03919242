"""V2G virtual power plant: edge gateway, VPP core and simulator."""
