"""Address blocks: two meshes on one machine never share loopback addresses."""

import subprocess
import sys

from bookinfo_labs.local import mesh as local_mesh


def test_blocks_held_at_once_are_distinct_and_freed_on_release(monkeypatch, tmp_path):
    monkeypatch.setattr(local_mesh, "BLOCK_LOCKS", tmp_path)
    held = [local_mesh.AddressBlock() for _ in range(5)]
    assert len({b.base for b in held}) == 5
    for block in held:
        block.release()
    again = local_mesh.AddressBlock()
    assert 10 <= again.base < 250
    again.release()


def test_a_block_another_process_holds_is_never_taken(monkeypatch, tmp_path):
    monkeypatch.setattr(local_mesh, "BLOCK_LOCKS", tmp_path)
    bases = list(range(10, 250, 3))
    # another process holds every block but one
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, sys\n"
            f"handles = [open('{tmp_path}/%d.lock' % b, 'a') for b in {bases[:-1]!r}]\n"
            "[fcntl.flock(h, fcntl.LOCK_EX) for h in handles]\n"
            "print('held', flush=True); sys.stdin.read()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        block = local_mesh.AddressBlock()
        assert block.base == bases[-1]
        block.release()
    finally:
        holder.stdin.close()
        holder.wait(10)


def test_two_meshes_wanting_one_gateway_port_get_two_and_never_an_ephemeral_one():
    """The first gets the preferred port; the second a spare one below the kernel's
    ephemeral range (an outgoing connection could take one from that range first)."""
    from bookinfo_labs.local.mesh import HostPort

    first = HostPort(8443)
    try:
        second = HostPort(8443)
        try:
            low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
            assert second.port != first.port
            assert 10000 <= second.port < low
        finally:
            second.release()
    finally:
        first.release()
