"""The training cache: every case decoded once into arrays that one slice can be read from without the rest.

:mod:`~training.data.cache.prepare` makes the entries (in parallel, resumable, redone only where an input or a
setting changed), :mod:`~training.data.cache.entry` is their format, and :mod:`~training.data.cache.read`
reads them back a slice at a time. :mod:`training.data.streaming` turns them into training items.
"""

from training.data.cache.entry import CacheSettings, CaseRecord
from training.data.cache.prepare import CacheSummary, cache_root, prepare_cache
from training.data.cache.read import CachedCase

__all__ = ["CacheSettings", "CacheSummary", "CachedCase", "CaseRecord", "cache_root", "prepare_cache"]
