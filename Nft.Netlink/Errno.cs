namespace Nft.Netlink;

/// <summary>Linux errno values the nf_tables emulation answers with.</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int E2BIG = 7;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EFBIG = 27;
    public const int ENOSPC = 28;
    public const int ERANGE = 34;
    public const int ENAMETOOLONG = 36;
    public const int ENOTEMPTY = 39;
    public const int ELOOP = 40;
    public const int EMLINK = 31;
    public const int ENODATA = 61;
    public const int EPROTO = 71;
    public const int EBADMSG = 74;
    public const int EMSGSIZE = 90;
    public const int EPROTONOSUPPORT = 93;
    public const int EOPNOTSUPP = 95;
    public const int ENOBUFS = 105;
    public const int EAFNOSUPPORT = 97;
    public const int ETIMEDOUT = 110;
    public const int ERESTART = 85;
    public const int ECANCELED = 125;
}
