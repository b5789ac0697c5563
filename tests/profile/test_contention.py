"""Other processes' share of the CPUs during a run, from /proc/stat and the process's own CPU time."""
import os

import pytest

from xmbench.profile.contention import PROC_STAT, ContentionMeter, CpuSnapshot, foreign_share, machine_busy_seconds


def test_the_share_is_what_others_used_of_every_cpu_over_the_wall_time():
    start, end = CpuSnapshot(busy_s=100.0, own_s=10.0, wall_s=0.0), CpuSnapshot(busy_s=101.5, own_s=10.5, wall_s=1.0)
    assert foreign_share(start, end, cpus=2) == pytest.approx(0.5)  # 1.5 s busy, 0.5 s ours, 2 CPU-seconds
    assert foreign_share(start, CpuSnapshot(100.2, 10.5, 1.0), cpus=2) == 0.0  # clock granularity: never negative
    assert foreign_share(start, CpuSnapshot(110.0, 10.0, 1.0), cpus=2) == 1.0
    assert foreign_share(None, end, cpus=2) is None and foreign_share(end, end, cpus=2) is None


def test_busy_seconds_count_user_system_irq_and_steal_not_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 20 50 1000 10 3 2 5 0 0\ncpu0 50 10 25 500 5 1 1 2 0 0\n")
    assert machine_busy_seconds(stat) == pytest.approx((100 + 20 + 50 + 3 + 2 + 5) / os.sysconf("SC_CLK_TCK"))
    assert machine_busy_seconds(tmp_path / "missing") is None


@pytest.mark.skipif(not PROC_STAT.exists(), reason="needs /proc/stat (Linux)")
def test_the_meter_measures_a_block():
    with ContentionMeter() as meter:
        sum(range(100_000))
    assert 0.0 <= meter.share <= 1.0
    assert ContentionMeter(cpus=4).cpus == 4
