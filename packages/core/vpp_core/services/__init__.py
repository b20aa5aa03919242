"""Frequency services (issue 19, core half): the fleet holds frequency-response capacity for a
window, each session answering its local grid frequency through an OCPP 2.1 ``LocalFrequency``
profile. ``products`` (what was asked, grid-code defaults), ``allocation`` (who holds how much),
``curves``/``profiles`` (what each station gets), ``manager`` (send, hold, clear). Like
``dispatch``, it knows nothing of websockets, the database or the web framework: the routes are
``vpp_core.api.services``.
"""
