"""The jail's command line and the limit plan are pure: what is bound, masked and dropped, in which order."""

from __future__ import annotations

from pathlib import Path

from juanie.sandbox.jail import Identity, Jail, bwrap_argv
from juanie.sandbox.limits import CgroupHost, Limits, plan
from juanie.sandbox.users import user_name


def _binds(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_the_data_directory_is_masked_under_a_read_only_tree_and_own_directories_bound_on_top():
    src = "/srv/juanie/data/ws/r1/src"
    jail = Jail(cwd=src, writable=(src,), hidden=("/srv/juanie/data",))
    argv = bwrap_argv(["make"], jail, identity=None)
    mask, bind = argv.index("/srv/juanie/data"), argv.index("/srv/juanie/data/ws/r1/src")
    assert argv[mask - 1] == "--tmpfs" and argv[bind - 1] == "--bind"
    assert argv.index("/srv") < mask < bind  # read-only tree, then the mask, then the writable bind
    assert "--unshare-user" in argv and "--die-with-parent" in argv and argv[-2:] == ["--", "make"]


def test_missing_parents_are_made_traversable_but_not_listable_once():
    jail = Jail(cwd="/", writable=("/data/ws/a", "/data/ws/b"), readable=("/data/toolchain",))
    argv = bwrap_argv(["true"], jail, identity=None)
    made = [argv[i + 3] for i, a in enumerate(argv) if a == "--perms" and argv[i + 2] == "--dir"]
    assert made == ["/data", "/data/ws"]
    assert all(argv[i + 1] == "0711" for i, a in enumerate(argv) if a == "--perms" and argv[i + 2] == "--dir")


def test_as_root_the_command_drops_to_the_project_uid_with_no_capability_left():
    argv = bwrap_argv(["id"], Jail(cwd="/", die_with_parent=False), identity=Identity("juanie-shop", 990, 985))
    assert "--unshare-user" not in argv and "--die-with-parent" not in argv
    tail = argv[argv.index("/usr/bin/setpriv"):]
    assert tail[:7] == ["/usr/bin/setpriv", "--reuid=990", "--regid=985", "--clear-groups", "--inh-caps=-all",
                        "--bounding-set=-all", "--no-new-privs"]  # fmt: skip
    assert tail[-1] == "id"


def test_nothing_but_the_system_and_what_the_jail_names_is_bound():
    jail = Jail(cwd="/w", writable=("/w",), readable=("/py",))
    argv = bwrap_argv(["true"], jail, identity=None, system=("/usr", "/etc"))
    assert _binds(argv, "--ro-bind-try") == ["/usr", "/etc"]
    assert _binds(argv, "--ro-bind") == ["/py"] and _binds(argv, "--bind") == ["/w"]


def test_limits_use_cgroup_v2_then_v1_then_an_rlimit_and_say_which():
    limits = Limits(cpu=0.5, memory=256 * 1024**2)
    v2 = plan(limits, CgroupHost("cgroup v2", v2_root=Path("/cg")), "shop-dev.api-1")
    assert v2.cgroups == {"/cg/juanie/shop-dev.api-1": {"memory.max": str(256 * 1024**2), "memory.swap.max": "0",
                                                        "cpu.max": "50000 100000"}}  # fmt: skip
    assert v2.launcher()[-1] == "--" and "/cg/juanie/shop-dev.api-1/cgroup.procs" in v2.launcher()
    v1 = plan(limits, CgroupHost("cgroup v1", v1_memory=Path("/m"), v1_cpu=Path("/c")), "x")
    assert v1.cgroups["/c/juanie/x"]["cpu.cfs_quota_us"] == "50000"
    assert v1.describe() == "limits: memory 256Mi (cgroup v1), cpu 0.5 cores (cgroup v1)"
    rl = plan(limits, CgroupHost("rlimit"), "x")
    assert rl.cgroups == {} and rl.prlimit(["app"]) == ["prlimit", f"--as={256 * 1024**2}", "--", "app"]
    assert rl.describe() == "limits: memory 256Mi (RLIMIT_AS), cpu 0.5 cores (not enforced: no writable cgroup)"
    assert plan(Limits(), CgroupHost("rlimit"), "x").describe() == "no resource limits set"


def test_project_user_names_fit_and_never_collide():
    assert user_name("shop") == "juanie-shop"
    long_a, long_b = "a" * 40 + "-one", "a" * 40 + "-two"
    assert len(user_name(long_a)) <= 32 and user_name(long_a) != user_name(long_b)
