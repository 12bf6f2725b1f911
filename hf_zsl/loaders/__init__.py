"""Loaders for the real benchmarks' file formats (DESIGN §4).

* :func:`load_coop_split`: CoOp's ``split_zhou_<Dataset>.json`` + image folder → ``DatasetDict``
  for :class:`~hf_zsl.protocols.FewShotProtocol` / :class:`~hf_zsl.protocols.BaseToNewProtocol`.
* :func:`load_xlsa17`: an xlsa17 folder (``res101.mat`` + ``att_splits.mat``) →
  :class:`~hf_zsl.protocols.GZSLProtocol`.
"""

from .coop_split import find_image_root, load_coop_split
from .xlsa17 import load_xlsa17, map_image_paths, readable_class_name

__all__ = ["find_image_root", "load_coop_split", "load_xlsa17", "map_image_paths", "readable_class_name"]
