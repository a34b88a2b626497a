"""The KD papers, one module each (``<section>.py`` with ``PAPER = <object>``): a paper's
tables, figures and layout over the shared run pool, and the paper contract of
:mod:`repro.core.papers` (entry points ``repro.papers``). :mod:`repro.distill.registry` is the
list of names. Torch-free to import: figure code imports torch when it draws."""
