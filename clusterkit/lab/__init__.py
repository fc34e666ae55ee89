"""The Jupyter side: a lab of node kernels, its magics and the console widget.

    %load_ext clusterkit.lab
    %cluster start a b c --cookie secret_token
    %%on a
    Node.ping("b@127.0.0.1")
"""
# Lazy: node kernels import clusterkit.lab.kernel_side, which must not pull in
# jupyter_client (about 0.15 s of every kernel's start).
_CORE_NAMES = ("Lab", "LabError", "Output", "RunResult", "full_name")


def __getattr__(name):
    if name in _CORE_NAMES:
        from . import core
        return getattr(core, name)
    raise AttributeError(f"module 'clusterkit.lab' has no attribute {name!r}")


def load_ipython_extension(ipython) -> None:
    from .magics import ClusterMagics
    ipython.register_magics(ClusterMagics(ipython))


def unload_ipython_extension(ipython) -> None:
    from .magics import shared_lab
    lab = shared_lab(create=False)
    if lab is not None:
        lab.shutdown()


__all__ = ["Lab", "LabError", "Output", "RunResult", "full_name", "load_ipython_extension"]
