using Nft.Bytecode;

namespace Nft.Lifter;

/// <summary>
/// nf_tables' data registers as the lifter follows them: sixteen 32-bit slots (NFT_REG32_00..15),
/// aliased four at a time by the 128-bit NFT_REG_1..4. A value occupies consecutive slots, padded
/// to 4 bytes; concatenations are consecutive values.
/// </summary>
internal sealed class RegisterFile
{
    public const int SlotCount = 16;

    readonly (RegValue Value, int Part)?[] _slots = new (RegValue, int)?[SlotCount];
    readonly RuleContext _rule;

    public RegisterFile(RuleContext rule) => _rule = rule;

    /// <summary>The first 32-bit slot of a data register number; refuses the verdict register and bad numbers.</summary>
    public int SlotOf(uint reg, int index)
    {
        if (reg >= NftRegisters.Reg1 && reg <= NftRegisters.Reg4) return (int)(reg - NftRegisters.Reg1) * 4;
        if (reg >= NftRegisters.Reg32First && reg <= NftRegisters.Reg32Last) return (int)(reg - NftRegisters.Reg32First);
        throw _rule.Refuse(index, $"register {reg} is not a data register");
    }

    public void Write(uint reg, RegValue value, int index)
    {
        int s = SlotOf(reg, index);
        if (value.Len <= 0) throw _rule.Refuse(index, "zero-length register value");
        if (s + value.Slots > SlotCount)
            throw _rule.Refuse(index, $"a {value.Len}-byte value does not fit at register {reg}");
        for (int i = s; i < s + value.Slots; i++)
        {
            if (_slots[i] is { } old && !old.Value.Consumed)
                throw _rule.Refuse(old.Value.Producer, $"the value it loads into register {RegName(i)} is overwritten before anything reads it");
            _slots[i] = (value, i - s);
        }
        // slots of a partly overwritten old value that survive can no longer be read as a whole value
        for (int i = 0; i < SlotCount; i++)
            if (_slots[i] is { } e && e.Value != value && !Intact(e.Value)) _slots[i] = null;
    }

    bool Intact(RegValue v)
    {
        // a loop, not Array.FindIndex with a lambda: this runs for every slot on every write
        int first = -1;
        for (int i = 0; i < SlotCount; i++)
            if (_slots[i] is { } x && x.Value == v && x.Part == 0) { first = i; break; }
        if (first < 0) return false;
        for (int p = 0; p < v.Slots; p++)
            if (first + p >= SlotCount || _slots[first + p] is not { } e || e.Value != v || e.Part != p) return false;
        return true;
    }

    /// <summary>The whole value starting at <paramref name="reg"/>, for bitwise/byteorder which rewrite one value.</summary>
    public RegValue ReadOne(uint reg, int index)
    {
        int s = SlotOf(reg, index);
        if (_slots[s] is not { } e) throw _rule.Refuse(index, $"reads register {reg} before anything wrote it");
        if (e.Part != 0) throw _rule.Refuse(index, $"reads register {reg} from the middle of a value");
        return e.Value;
    }

    /// <summary>
    /// The values that <paramref name="len"/> bytes starting at <paramref name="reg"/> cover, each padded to 4
    /// bytes (a concatenation when more than one). The last one may be read partly (a prefix compare).
    /// </summary>
    public List<(RegValue Value, int Used)> Read(uint reg, int len, int index)
    {
        int s = SlotOf(reg, index);
        var parts = new List<(RegValue, int)>(2); // presized: a read covers one value, or two in a concatenation
        int remaining = len;
        while (remaining > 0)
        {
            if (s >= SlotCount) throw _rule.Refuse(index, $"reads {len} bytes past the last register");
            if (_slots[s] is not { } e) throw _rule.Refuse(index, $"reads register {RegName(s)} before anything wrote it");
            if (e.Part != 0) throw _rule.Refuse(index, $"reads register {RegName(s)} from the middle of a value");
            var v = e.Value;
            int used = Math.Min(remaining, v.PaddedLen);
            parts.Add((v, used));
            remaining -= used;
            s += v.Slots;
        }
        foreach (var (v, _) in parts) v.Consumed = true;
        return parts;
    }

    /// <summary>The first value (in slot order) that nothing read, or null.</summary>
    public RegValue? FirstUnconsumed()
    {
        foreach (var e in _slots)
            if (e is { } x && !x.Value.Consumed) return x.Value;
        return null;
    }

    static string RegName(int slot) => (slot % 4 == 0) ? $"{slot / 4 + 1}" : $"{slot + NftRegisters.Reg32First}";
}
