import Testing
@testable import Collatz

@Suite("Collatz chains: exact arithmetic")
struct CollatzChainTests {
    @Test("27 takes 111 steps and peaks at 9232")
    func twentySeven() throws {
        let values = try CollatzChain.values(from: 27)
        #expect(values.count == 112)
        #expect(values.first == 27)
        #expect(values.last == 1)
        #expect(values.max() == 9232)
        let summary = try CollatzChain.summary(of: 27)
        #expect(summary.steps == 111)
        #expect(summary.peak == 9232)
    }

    @Test("837,799 has the longest chain below one million: 524 steps")
    func eightThreeSevenSevenNineNine() throws {
        let summary = try CollatzChain.summary(of: 837_799)
        #expect(summary.steps == 524)
        #expect(summary.peak == 2_974_984_576)
        // Its neighbours below a million are all shorter.
        for n: UInt128 in [837_798, 837_800, 626_331, 939_497] {
            #expect(try CollatzChain.summary(of: n).steps < 524)
        }
    }

    @Test("12,327,829,503 peaks above 2^64, exactly")
    func aboveUInt64() throws {
        let summary = try CollatzChain.summary(of: 12_327_829_503)
        #expect(summary.steps == 543)
        #expect(summary.peak == UInt128(decimalDigits: "20722398914405051728"))
        #expect(summary.peak > UInt128(UInt64.max))
        // Every step follows the rule exactly across the 2^64 boundary.
        let values = try CollatzChain.values(from: 12_327_829_503)
        for (a, b) in zip(values, values.dropFirst()) {
            #expect(a % 2 == 0 ? b * 2 == a : b == 3 * a + 1)
        }
    }

    @Test("the top of the default range: 99,999,999,999,999")
    func topOfRange() throws {
        let summary = try CollatzChain.summary(of: 99_999_999_999_999)
        #expect(summary.steps == 313)
        #expect(summary.peak == 58_385_852_050_781_248)
    }

    @Test("1 has one value and no steps; 0 and overflow throw instead of trapping")
    func edges() throws {
        #expect(try CollatzChain.values(from: 1) == [1])
        #expect(try CollatzChain.values(from: 2) == [2, 1])
        #expect(throws: CollatzChain.Failure.zeroStart) { try CollatzChain.values(from: 0) }
        // An odd start near the top of UInt128: 3n+1 does not fit.
        let huge = UInt128.max / 2 | 1
        #expect(throws: CollatzChain.Failure.overflow(start: huge, step: 1)) { try CollatzChain.values(from: huge) }
        #expect(CollatzChain.next(UInt128.max) == nil)
        #expect(CollatzChain.next(UInt128.max - 1) == UInt128.max / 2)
        #expect(throws: CollatzChain.Failure.tooLong(start: 27, maxSteps: 10)) {
            try CollatzChain.values(from: 27, maxSteps: 10)
        }
    }

    @Test("decimal parsing: digits only, exact to 2^128 - 1, nil beyond")
    func decimalParsing() {
        #expect(UInt128(decimalDigits: "0") == 0)
        #expect(UInt128(decimalDigits: "007") == 7)
        #expect(UInt128(decimalDigits: "340282366920938463463374607431768211455") == UInt128.max)
        #expect(UInt128(decimalDigits: "340282366920938463463374607431768211456") == nil)
        #expect(UInt128(decimalDigits: "") == nil)
        #expect(UInt128(decimalDigits: "-1") == nil)
        #expect(UInt128(decimalDigits: "1e3") == nil)
        #expect(UInt128(decimalDigits: " 1") == nil)
    }
}
