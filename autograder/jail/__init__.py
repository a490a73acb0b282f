"""The untrusted side of the sandbox: code that runs inside the jail.

Everything here runs in a sandbox's fresh namespaces — first as root, pid 1 of them
(entering the jail, starting the kernel or the re-verification children), then as the
sandbox uid (``nobody`` or the warden's lease) next to student code:

- ``execute``: the notebook run (``main``: nbclient driving the kernel, output caps);
- ``kernel_launcher``: the kernel as the sandbox uid under rlimits (cold exec or warm fork);
- ``verify``: re-verification, one fresh child per exercise with its course_lib view;
- ``replay`` and ``replay_shell``: the cells before an exercise's test, run as the
  kernel would (``get_ipython()``, magics, time boxes);
- ``fork``: what a helper forked from the warm template does first;
- ``request``: the typed ``JailRequest`` the trusted side builds (the only module of
  this package the trusted side may import; ``tests/autograder/test_jail_boundary.py``).

What these modules may import from ``autograder`` (the same test holds them to it):
this package; ``autograder.limits`` (``Limits``/``Protections``); ``autograder.sandbox``
(the walls it builds from inside: ``enter_jail``, ``drop_privileges``, ``fill_work``, ``jail_env``,
``sandbox_uid``); the pure shared modules ``autograder.wire`` (the re-verification
frames), ``autograder.cap`` (output budget), ``autograder.ipython_syntax`` (IPython's
cell transform) and ``autograder.replay`` (only ``ReplayCell``, the plan's cell type).
Never the grading side (pipeline, api, gradebook, views, scoring, verify, execute,
template, ...): it holds the solutions, the secret seeds and the class's records.

Nothing is imported here: the trusted side's ``from autograder.jail.request import ...``
must not load the jail's modules.
"""
