"""`clusterkit shell`: IPython with the node started and an iex-style prompt."""
from __future__ import annotations


def run(node_name: str) -> int:
    from IPython.terminal.embed import InteractiveShellEmbed
    from IPython.terminal.prompts import Prompts, Token

    import clusterkit as ck

    class NodePrompts(Prompts):
        # iex shows `iex(a@host)1>`; Erlang's shell `(a@host)1>`.
        def in_prompt_tokens(self):
            return [(Token.Prompt, f"({node_name})"),
                    (Token.PromptNum, str(self.shell.execution_count)),
                    (Token.Prompt, "> ")]

        def out_prompt_tokens(self):
            return []

    namespace = {name: getattr(ck, name) for name in ck.__all__}
    namespace["ck"] = ck
    shell = InteractiveShellEmbed(user_ns=namespace, banner1=(
        f"clusterkit {ck.__version__}: this shell is the node {node_name}\n"
        "Try Node.list(), Node.ping('b@127.0.0.1'), flush(). Ctrl-D leaves.\n"))
    shell.prompts = NodePrompts(shell)
    shell.confirm_exit = False
    # IPython adds a random "Tip: ..." under the banner; the banner says what the learner needs.
    shell.enable_tip = False
    shell()
    ck.stop()
    return 0
