harmony_registry::main!(greeter_deploy, harmony_k8s);
