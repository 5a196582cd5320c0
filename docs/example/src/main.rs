harmony_registry::main!(greeter_deploy);
