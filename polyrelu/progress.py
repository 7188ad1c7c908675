"""The progress bar of long enumerations (tqdm, imported only here)."""

__all__ = ["progress_bar"]


def progress_bar(enabled, description):
    """A tqdm bar counting regions; a silent stand-in when ``enabled`` is False."""
    from tqdm import tqdm

    return tqdm(disable=not enabled, unit=" regions", desc=description, mininterval=0.5)
