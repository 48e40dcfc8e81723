namespace Bpfilter.Fuzz;

public static class Replay
{
    /// <summary>Runs one input through a target: null when it passed, else what crashed (with its stack).</summary>
    public static string? Run(IFuzzTarget target, byte[] input)
    {
        try
        {
            target.Run(input);
            return null;
        }
        catch (Exception e)
        {
            return e.ToString();
        }
    }
}
