# The 90th Fibonacci number, iteratively: a loop in LLVM's BPF assembly syntax.
# Run it on the embedded VM:  tsbpf asm examples/fib.s -o - | tsbpf run-raw -
        r1 = 0
        r2 = 1
        r3 = 90
loop:
        r4 = r1
        r4 += r2
        r1 = r2
        r2 = r4
        r3 += -1
        if r3 != 0 goto loop
        r0 = r1
        exit
