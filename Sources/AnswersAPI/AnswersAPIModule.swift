import Collatz
