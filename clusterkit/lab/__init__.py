"""The Jupyter side: a lab of node kernels, its magics and the console widget.

    %load_ext clusterkit.lab
    %cluster start a b c --cookie secret_token
    %%on a
    Node.ping("b@127.0.0.1")
"""
from .core import Lab, LabError, Output, RunResult, full_name


def load_ipython_extension(ipython) -> None:
    from .magics import ClusterMagics
    ipython.register_magics(ClusterMagics(ipython))


def unload_ipython_extension(ipython) -> None:
    from .magics import shared_lab
    lab = shared_lab(create=False)
    if lab is not None:
        lab.shutdown()


__all__ = ["Lab", "LabError", "Output", "RunResult", "full_name", "load_ipython_extension"]
