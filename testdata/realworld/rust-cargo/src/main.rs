fn main() {
    let mut buffer = itoa::Buffer::new();
    println!("hello from itoa: {}", buffer.format(1234567));
}
