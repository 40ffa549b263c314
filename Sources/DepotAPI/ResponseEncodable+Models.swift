import DepotCore
import Hummingbird

extension PoolInfo: ResponseEncodable {}
extension VolumeInfo: ResponseEncodable {}
extension CapacityReport: ResponseEncodable {}
extension PoolList: ResponseEncodable {}
extension VolumeList: ResponseEncodable {}
extension DaemonStatus: ResponseEncodable {}
extension DepotCore.ErrorBody: ResponseEncodable {}
