"""Frequency services (issue 19, core half): the fleet holds frequency-response capacity for a
window, each session answering its local grid frequency through an OCPP 2.1 ``LocalFrequency``
profile. ``products`` (what was asked, grid-code defaults), ``allocation`` (who holds how much),
``curves``/``profiles`` (what each station gets), ``manager`` (send, hold, clear), ``api``
(``/api/v1/services``). Like ``dispatch``, nothing here but ``api`` knows the web framework.
"""
