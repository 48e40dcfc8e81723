using System.Diagnostics;

namespace Nft.Engine;

/// <summary>Accumulates a batch's time per phase (<see cref="BatchPhases"/>) while the endpoint runs it.</summary>
internal sealed class BatchClock
{
    public int Messages;
    long _apply, _validate, _prepare, _commit, _save, _notify;
    long _since = Stopwatch.GetTimestamp();

    long Lap()
    {
        long now = Stopwatch.GetTimestamp(), d = now - _since;
        _since = now;
        return d;
    }

    /// <summary>Starts timing the next phase (what passed since the last lap is nobody's).</summary>
    public void Restart() => _since = Stopwatch.GetTimestamp();

    public void Applied() => _apply += Lap();
    public void Validated() => _validate += Lap();
    public void Prepared() => _prepare += Lap();
    public void Committed() => _commit += Lap();
    public void Saved() => _save += Lap();
    public void Notified() => _notify += Lap();

    public BatchPhases Phases() => new(Messages, T(_apply), T(_validate), T(_prepare), T(_commit), T(_save), T(_notify));

    static TimeSpan T(long ticks) => Stopwatch.GetElapsedTime(0, ticks);
}
