import DepotCore
import Testing

@Suite struct ObjectNameTests {
    @Test(arguments: ["a", "default", "vm-01", "db_2.disk", "0abc", String(repeating: "a", count: 63)])
    func acceptsValidNames(name: String) {
        #expect(ObjectName.isValid(name))
    }

    @Test(arguments: [
        "", "A", "Vm1", "-a", ".a", "_a", "..", ".", "a/b", "../etc", "a b", "ä", "a\0",
        String(repeating: "a", count: 64), "a:b",
    ])
    func rejectsInvalidNames(name: String) {
        #expect(!ObjectName.isValid(name))
        #expect(throws: DepotError.self) { try ObjectName.validate(name, kind: "pool") }
    }

    @Test func parsesVolumeRefs() throws {
        let ref = try VolumeRef(parsing: "gold/vm1")
        #expect(ref.pool == "gold" && ref.name == "vm1")
        #expect(ref.description == "gold/vm1")
        for bad in ["gold", "gold/", "/vm", "gold/vm/x", "gold/../x", "../x/y", "Gold/vm"] {
            #expect(throws: DepotError.self) { try VolumeRef(parsing: bad) }
        }
    }
}
