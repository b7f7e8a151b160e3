#include "catalog.h"

namespace hvkvm::devices {

// Defined in the devices' own files.
extern const DeviceType kConsoleDevice;
extern const DeviceType kDebugDeviceType;
extern const DeviceType kPostCodeDevice;
extern const DeviceType kInterruptGeneratorDevice;
extern const DeviceType kIdeControllerDevice;
extern const DeviceType kSynicEchoDevice;
extern const DeviceType kVmbusDevice;

std::span<const DeviceType* const> device_catalog() {
    // Built in this order, which is also the order of start() (and reverse order of stop()).
    static const DeviceType* const kTypes[] = {
        &kConsoleDevice,
        &kDebugDeviceType,
        &kPostCodeDevice,
        &kInterruptGeneratorDevice,
        &kIdeControllerDevice,
        &kSynicEchoDevice,
        &kVmbusDevice,
    };
    return kTypes;
}

}  // namespace hvkvm::devices
