/*
 * Stand-in for Windows' bcryptprimitives.dll, for running lockrun's Windows build under
 * Wine 8 (Debian 12), which has no such DLL. Rust's standard library imports
 * ProcessPrng from it to seed its hash maps; without it every Rust .exe fails to start
 * (STATUS_DLL_NOT_FOUND, c0000135). Only used by scripts/wine-test.sh: never shipped.
 *
 * ProcessPrng's documented contract: fill the buffer with random bytes, always TRUE.
 * The bytes come from bcrypt.dll's system RNG, which Wine does have.
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        /* BCryptGenRandom takes a ULONG length: feed it in chunks. */
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) {
            /* No way to report failure through this API; the real DLL cannot fail. */
            ExitProcess(0xC0000001);
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
