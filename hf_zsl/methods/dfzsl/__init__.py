"""DFZSL (Tang et al., *Data-Free Generalized Zero-Shot Learning*, AAAI 2024).

Two sides, kept apart:

* the **server** (:func:`train_server`): the owner of the base-class images trains a classifier on
  them — a linear probe over CLIP features, queried as a cosine classifier — and hands over only
  that (:class:`ServerClassifier`);
* the **data-free learner** (:func:`fit_data_free`), which gets the server classifier and the class
  names, never an image:

  1. virtual domain modelling: a von Mises–Fisher per seen class, fitted so its samples get the
     server's logits, then sampled and filtered to the samples the server classifies correctly;
  2. FLPT: the context tokens and the ``t2i`` residual trained on the virtual features;
  3. a conditional generator (TF-VAEGAN-style) trained on the virtual features, conditioned on the
     FLPT text features, synthesises new-class features;
  4. the logit-adjusted cosine classifier over all classes, trained on virtual ∪ synthetic features,
     its epoch chosen on held-out virtual / synthetic features (never on test data).

The package, one stage a module: :mod:`.server` (the server and its classifier), :mod:`.simulator`
(1), :mod:`.flpt` (2), :mod:`.generator` with :mod:`.generator_networks` (3), :mod:`.classifier` (4),
:mod:`.settings` (every stage's settings) and :mod:`.fitting` (:func:`fit`, :func:`fit_data_free`).
The registry reads :func:`fit` and :data:`PRESETS` here.
"""

from .fitting import class_split, fit, fit_data_free
from .server import SERVERS, ServerClassifier, class_mean_weights, logistic_regression_weights, train_server
from .settings import DEFAULTS, PRESETS, DFZSLSettings

__all__ = [
    "DEFAULTS",
    "PRESETS",
    "SERVERS",
    "DFZSLSettings",
    "ServerClassifier",
    "class_mean_weights",
    "class_split",
    "fit",
    "fit_data_free",
    "logistic_regression_weights",
    "train_server",
]
