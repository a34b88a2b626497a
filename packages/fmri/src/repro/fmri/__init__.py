"""repro.fmri: white- vs black-box adversarial stimuli, DNN and fMRI representational analysis."""

__version__ = "0.1.0"
