"""The problem vocabulary every layer may use: weights, tokens, attention spec, input errors, seeding.

Nothing here imports another part of ctattn: :mod:`ctattn.core.problem` (``AttentionWeights``,
``Tokens``, ``AttentionSpec``, ``InputError``, random problems), :mod:`ctattn.core.feature_maps`
(``phi`` and its derivative) and :mod:`ctattn.core.seeding` (named random streams of one master
seed).
"""
