/* Test harness only, never packaged: Debian 12's Wine 8 has no bcryptprimitives.dll, whose
 * ProcessPrng the Rust standard library (1.78 and later) imports on Windows for random seeds.
 * This stand-in fills the buffer from RtlGenRandom (advapi32's SystemFunction036), which Wine
 * has, so that burncloud.exe starts under Wine as it does on Windows.
 * x86_64-w64-mingw32-gcc -O2 -shared -s -o bcryptprimitives.dll bcryptprimitives.c -ladvapi32 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a ULONG length; the real ProcessPrng takes any size and never fails. */
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
