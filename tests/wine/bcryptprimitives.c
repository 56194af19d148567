/*
 * A stand-in for Windows 10's own bcryptprimitives.dll, for the interop tests that run the
 * Windows builds under wine (tests/interop_windows_test.go). Go >= 1.22 programs get their
 * random bytes from ProcessPrng in that DLL and stop at start without it ("fatal error:
 * bcryptprimitives.dll not found"), and Debian's wine 8.0 lacks it. Every Windows that Tor
 * Browser supports has it; this one gets the bytes from advapi32's RtlGenRandom
 * (SystemFunction036), as wine's later versions do. The tests build it with the mingw-w64
 * compilers (64 and 32 bits) and copy it into their wine prefix. Not part of the product.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
	while (length > 0) { /* RtlGenRandom takes a ULONG: in pieces */
		ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		length -= n;
	}
	return TRUE;
}

/* Built without the C runtime (-nostdlib): nothing to set up. */
BOOL WINAPI DllMainCRTStartup(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
	return TRUE;
}
